"""review_riders.py: reproductions of a hostile review of the recorded
riders of connections (commit 0c5206a: the conn_riders table,
daemon/store.c; lbd_reader_await, reader_awaited, reader_add,
lbd_reader_rejoin, awaited_end in daemon/readers.c; docs/SHARED.md,
"Restart").

Each test asserts the behaviour docs/SHARED.md promises and failed on the
build it was written against; each is fixed since.  Run as the other suites:

    cd _b && LB_BUILDDIR=$PWD /usr/bin/python3 ../tests/review_riders.py
"""
import os
import signal
import sqlite3
import sys
import textwrap
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lbdaemon import boot_id8, start_time, unique_name  # noqa: E402
from shared import ROOT, SharedCase  # noqa: E402


class ReviewRiders(SharedCase):
    """Reproductions of a review of the recorded riders: each fails on
    the build it was written against (0c5206a)."""

    @unittest.skipUnless(ROOT, "needs root (a second user)")
    def test_database_made_anew_in_grace_takes_riders_on_markers(self):
        # The state database deleted while the daemon runs (an operator's
        # "rm", a tmp cleaner) in the grace period: lbd_store_check makes
        # it anew through lbd_store_open, whose store_table_known looks
        # for conn_riders BEFORE the schema makes the table, in a file
        # that was just made: s->riders_known = 0, as for a database of an
        # earlier release.  From then on lbd_store_conn_riders_known says
        # 0 and reader_add (RECLAIM of a rider, make 0) skips
        # reader_awaited: a marker alone, which any user who may write
        # the directory makes, joins a previous run's shared hold again,
        # the very hole the conn_riders table was made to close
        # (test_marker_made_after_a_restart_joins_no_one); riders_to_come
        # falls back to markers the same way.  The rows are in memory
        # still (l->awaited, written again by store_resync): a database
        # made anew by this daemon records riders (riders_known 1); only
        # one found without the table at start is an earlier release's.
        d = os.path.join(self.dir, "open")
        os.mkdir(d)
        os.chmod(d, 0o777)
        p = os.path.join(d, "r")
        self.reader_process(p)          # the artefact's reader
        b = self.v2()
        tok = b.call("ACQUIRE", path=p, mode="shared").fields["token"]
        self.restart(b)
        for suffix in ("", "-wal", "-shm"):
            try:
                os.unlink(self.daemon.state + suffix)
            except FileNotFoundError:
                pass
        # A commit has the daemon look at its database (lbd_store_check).
        x = self.v2()
        self.assertCode(x.call("ACQUIRE", path=self.path("other")), "OK")
        self.assertTrue(self.within(lambda: "made anew" in
                                   self.daemon.logtext()),
                        "the state database was not made anew")
        them = self.v2(nobody=True)
        plant = self.spawn(textwrap.dedent("""
            import os
            os.close(os.open(%r, os.O_CREAT | os.O_WRONLY, 0o644))
            print("made", flush=True)
            """ % os.path.join(d, "r.lock.reader.%d.%s.%s.0" % (
                them.pid, start_time(them.pid), boot_id8()))),
            user="nobody")
        self.assertEqual(plant.stdout.readline(), b"made\n")
        r = them.call("RECLAIM", path=p, token=tok)
        self.assertNotEqual(r.code, "OK", "a user that never rode the "
                            "lock rides it on a marker it made, once the "
                            "state database was made anew")
        self.assertEqual(self.status(them, p)["mine"], "0")
        b = self.v2()
        self.assertCode(b.call("RECLAIM", path=p, token=tok), "OK")

    def test_second_restart_after_an_earlier_release_forgets_riders(self):
        # A database of an earlier release (no conn_riders) is taken
        # with its riders on their markers (riders_known 0), and the
        # schema makes the table at once.  Killed again within the grace
        # period, the next daemon finds the table (riders_known 1) and
        # only the rows the first wrote: rows of riders that reclaimed
        # in it, none of those still to come (l->awaited was empty:
        # lbd_reader_await has no row to read, and the markers were never
        # written down as rows).  Its riders_to_come then says "no rider
        # to come": the artefact's reader's RELEASE in the grace period
        # frees the lock while a rider (its process alive, its marker
        # there, not reclaimed yet, never told it lost anything) still
        # reads, and a writer is granted beside it; the rider's RECLAIM
        # is refused after (reader_add: "recorded no shared hold").
        # docs/SHARED.md: "a second restart within the grace period
        # still knows who may come".
        p = self.path()
        a = self.v2()
        tok = a.call("ACQUIRE", path=p, mode="shared").fields["token"]
        rider = self.v2()               # this process, alive throughout
        self.assertCode(rider.call("ACQUIRE", path=p, mode="shared",
                                   thread=3), "OK")
        self.assertEqual(len(self.markers()), 1)
        self.daemon.stop(signal.SIGKILL)
        a.close()
        rider.close()
        db = sqlite3.connect(self.daemon.state)
        db.execute("DROP TABLE conn_riders")    # an earlier release's
        db.commit()
        db.close()
        self.daemon.start()             # riders taken on their markers
        self.restart()                  # killed again, in the grace
        a = self.v2()
        self.assertCode(a.call("RECLAIM", path=p, token=tok), "OK")
        self.assertCode(a.call("RELEASE", path=p), "OK")
        w = self.v2()
        self.assertCode(w.call("ACQUIRE", path=p, timeout=0), "EALREADY",
                        "a writer granted while a rider of the previous "
                        "run, alive with its marker there, has yet to "
                        "reclaim")
        rider = self.v2()
        self.assertCode(rider.call("RECLAIM", path=p, token=tok, thread=3),
                        "OK")

    def test_rider_with_no_marker_holds_a_released_lock_through_grace(self):
        # A rider whose library released its hold in-process while the
        # daemon was away (its RELEASE unanswered: the library removes
        # its own marker, docs/SHARED.md "Without the daemon") has a row
        # still, its process alive.  riders_to_come, with the database
        # recording riders, counts every awaited rider whose process
        # lives, and never asks whether its marker is there; yet
        # reader_add refuses the RECLAIM of a rider with no marker
        # ("no marker of this reader beside it"): that rider can never
        # come.  So the artefact's reader's RELEASE in the grace period
        # is kept for nobody (lbd_reader_keep_for_readers: for_readers),
        # and every writer waits the whole grace period (30 s by
        # default); the reader's UPGRADE waits as long, and its RECLAIM
        # mode=exclusive is refused (its hold reported lost).  Before
        # 0c5206a the lock was released at once (no live marker).
        p = self.path()
        a = self.v2()
        tok = a.call("ACQUIRE", path=p, mode="shared").fields["token"]
        self.reader_process(p)          # the rider, alive throughout
        mark, = self.markers()
        self.daemon.stop(signal.SIGKILL)
        a.close()
        os.unlink(os.path.join(self.locks, mark))   # released in-process
        self.daemon.start()
        a = self.v2()
        self.assertCode(a.call("RECLAIM", path=p, token=tok), "OK")
        self.assertCode(a.call("RELEASE", path=p), "OK")
        w = self.v2()
        self.assertCode(w.call("ACQUIRE", path=p, timeout=0), "OK",
                        "a released lock kept through the grace period "
                        "for a rider that cannot reclaim (no marker)")

    def test_riders_beside_an_artefact_handed_before_the_commit(self):
        # The previous daemon handed the artefact to rider b (its file
        # renamed over the lock file) and was killed before it committed
        # that; rider c rode beside them (its row and marker there).  At
        # start reconcile_one awaits c's row on the old reader's hold
        # (rider_await), then finds the artefact no longer the old
        # reader's and forgets that hold (lbd_hold_forget): the lock goes
        # (lbd_lock_put -> lbd_readers_unawait -> awaited_end), and c's
        # awaited record is dropped and its row deleted.  b's RECLAIM is
        # given back (reclaim_own_artefact); c's RECLAIM, its marker
        # there, is then refused (reader_add: "the previous run recorded
        # no shared hold of this reader"), where docs/SHARED.md says "the
        # other riders' RECLAIMs ride on it" (and did before 0c5206a, on
        # the marker).  Another lock's orphan keeps the grace period
        # running.
        p = self.path()
        self.reader_process(self.path("q"))     # an orphan: the grace runs
        self.reader_process(p)          # the artefact's reader
        b = self.v2()
        tok = b.call("ACQUIRE", path=p, mode="shared").fields["token"]
        c = self.v2()
        self.assertCode(c.call("ACQUIRE", path=p, mode="shared",
                               thread=9), "OK")
        self.daemon.stop(signal.SIGKILL)
        b.close()
        c.close()
        # What the killed daemon's handoff left: b's unique file as the
        # lock file, b's marker gone with its ride; c's marker stays.
        mine = unique_name(os.getpid(), p + ".lock", "link")
        with open(mine, "w"):
            pass
        os.rename(mine, p + ".lock")
        os.link(p + ".lock", mine)
        for m in self.markers():
            if m.endswith(".0"):
                os.unlink(os.path.join(self.locks, m))
        self.assertEqual(len(self.markers()), 1)
        self.daemon.start()
        b = self.v2()
        self.assertCode(b.call("RECLAIM", path=p, token=tok, mode="shared"),
                        "OK")
        c = self.v2()
        self.assertCode(c.call("RECLAIM", path=p, token=tok, thread=9),
                        "OK", "a rider beside the artefact handed before "
                        "the commit refused its hold back")
        self.assertEqual(self.status(c, p)["holders"], "2")

    def test_marker_of_a_rider_gone_in_grace_left_when_its_lock_goes(self):
        # A rider of the previous run, awaited at start (its process
        # alive), exits in the grace period without reclaiming; the
        # artefact's reader then releases: riders_to_come says none to
        # come, the lock is released and goes (lbd_lock_put ->
        # lbd_readers_unawait -> awaited_end(l, 0): forget 0, "their
        # markers left"), and nothing ever looks at that lock's awaited
        # markers again: the rider's marker stays in the directory for
        # ever, where docs/SHARED.md says the markers of riders that never
        # reclaimed are removed at the grace period's end.  (awaited_end
        # could remove them with forget whenever the daemon is not
        # stopping: a lock that goes in the grace period has no hold for
        # them to reclaim.)
        p = self.path()
        a = self.v2()
        tok = a.call("ACQUIRE", path=p, mode="shared").fields["token"]
        rider = self.reader_process(p)
        self.assertEqual(len(self.markers()), 1)
        self.restart(a, grace=2)
        rider.kill()
        rider.wait()
        a = self.v2()
        self.assertCode(a.call("RECLAIM", path=p, token=tok), "OK")
        self.assertCode(a.call("RELEASE", path=p), "OK")
        time.sleep(3)                   # past the grace period (2 s)
        self.assertCode(a.call("PING"), "OK")
        self.assertEqual(self.markers(), [], "the marker of a rider that "
                         "never reclaimed left past the grace period")


if __name__ == "__main__":
    unittest.main()

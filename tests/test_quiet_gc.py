"""quiet_gc: the collector's settings during a run, restored after it, also when runs overlap."""
import gc
import threading

from simlab.sim.quiet_gc import quiet_gc


def test_settings_restored_after_nested_and_overlapping_runs():
    before = gc.get_threshold()
    with quiet_gc():
        assert gc.get_threshold()[0] >= 100_000 and gc.get_freeze_count() > 0
        with quiet_gc():  # a run inside a run (or a second thread's) keeps them
            pass
        assert gc.get_threshold()[0] >= 100_000
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0

    inside, leave = threading.Event(), threading.Event()

    def other():
        with quiet_gc():
            inside.set()
            leave.wait(10)

    t = threading.Thread(target=other)
    t.start()
    inside.wait(10)
    with quiet_gc():
        pass
    assert gc.get_threshold()[0] >= 100_000  # the other run is still inside
    leave.set()
    t.join()
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0


def test_an_error_inside_still_restores():
    before = gc.get_threshold()
    try:
        with quiet_gc():
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0

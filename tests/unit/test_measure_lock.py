"""One measurement per machine at a time and no other job's compute during it: the lock across real processes."""

import multiprocessing
import time

from compress_export.util import measure_lock

CONTEXT = multiprocessing.get_context("spawn")


def _compute_then_measure(lock_dir, compute_s, measure_s, queue, name, barrier=None):
    import os

    os.environ[measure_lock.ENV] = lock_dir
    held = measure_lock.hold_shared()  # as a fleet job's process inherits its hold
    os.environ[measure_lock.HELD_FD_ENV] = str(held)
    try:
        if barrier is not None:
            barrier.wait(30)  # every job computes before any asks to measure
        queue.put((name, "compute", time.time()))
        time.sleep(compute_s)
        queue.put((name, "wants-to-measure", time.time()))
        with measure_lock.measuring():
            start = time.time()
            time.sleep(measure_s)
            queue.put((name, "measure", start, time.time()))
        queue.put((name, "compute-again", time.time()))
        time.sleep(0.2)
    finally:
        os.close(held)
    queue.put((name, "released", time.time()))


def _run(tmp_path, plans):
    queue, barrier = CONTEXT.Queue(), CONTEXT.Barrier(len(plans))
    workers = [CONTEXT.Process(target=_compute_then_measure, args=(str(tmp_path), c, m, queue, name, barrier))
               for name, c, m in plans]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    events = []
    while not queue.empty():
        events.append(queue.get())
    return events


def test_a_measurement_waits_for_other_jobs_compute_and_two_never_overlap(tmp_path):
    events = _run(tmp_path, [("a", 0.1, 0.5), ("b", 0.8, 0.5)])
    measures = {e[0]: (e[2], e[3]) for e in events if e[1] == "measure"}
    wants = {e[0]: e[2] for e in events if e[1] == "wants-to-measure"}
    (a0, a1), (b0, b1) = measures["a"], measures["b"]
    assert a1 <= b0 or b1 <= a0, "two measurements overlapped"
    # a asked to measure while b still computed: a started only once b's compute gave the machine up
    assert wants["a"] < wants["b"] <= a0 + 0.01
    computing_again = {e[0]: e[2] for e in events if e[1] == "compute-again"}
    assert not (b0 < computing_again["a"] < b1), "a computed during b's measurement"


def test_a_killed_holder_frees_the_machine(tmp_path):
    holder = CONTEXT.Process(target=_compute_then_measure, args=(str(tmp_path), 30, 0, CONTEXT.Queue(), "x"))
    holder.start()
    time.sleep(1.5)
    holder.kill()
    holder.join()
    events = _run(tmp_path, [("y", 0.0, 0.1)])
    assert [e for e in events if e[1] == "measure"]


def test_a_hold_handed_to_a_child_covers_its_whole_life_and_lets_it_measure(tmp_path, monkeypatch):
    import os
    import subprocess
    import sys

    monkeypatch.setenv(measure_lock.ENV, str(tmp_path))
    held = measure_lock.hold_shared()
    child = ("import time; from compress_export.util import measure_lock\n"
             "time.sleep(1.0)\n"
             "wants = time.time()\n"
             "with measure_lock.measuring(): start = time.time(); time.sleep(0.2); end = time.time()\n"
             "time.sleep(1.0)\n"
             "print(wants, start, end)\n")
    process = subprocess.Popen([sys.executable, "-c", child], pass_fds=(held,), stdout=subprocess.PIPE, text=True,
                               env={**os.environ, measure_lock.HELD_FD_ENV: str(held)})
    events = _run(tmp_path, [("other", 0.0, 0.1)])
    stdout, _ = process.communicate(timeout=30)
    os.close(held)
    assert process.returncode == 0  # the child measured: its inherited hold did not lock it out
    wants, start, end = map(float, stdout.split())
    _, _, other_start, other_end = next(e for e in events if e[1] == "measure")
    # the other job measured only while the child waited to measure (it computed nothing then), never while the
    # child computed before or after its own measurement, and never during it
    assert wants - 0.01 <= other_start and other_end <= start + 0.01, (wants, start, end, other_start, other_end)

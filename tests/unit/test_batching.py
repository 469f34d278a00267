"""The micro-batcher through its public interface: submit, stats, errors."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from service.classifier.batching import PROBE, MicroBatcher
from service.errors import DeadlineExceeded, Overloaded


class Recorder:
    """A run function that doubles its input and remembers the batch sizes it saw."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.sizes: list[int] = []
        self.gate = gate

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        if self.gate is not None:
            assert self.gate.wait(10)
        self.sizes.append(len(batch))
        return batch * 2


def run(coro_factory):  # type: ignore[no-untyped-def]
    return asyncio.run(coro_factory())


def test_concurrent_requests_are_merged_and_each_gets_its_slice() -> None:
    gate = threading.Event()
    recorder = Recorder(gate)

    async def scenario() -> list[np.ndarray]:
        batcher = MicroBatcher(
            recorder,
            max_batch_size=64,
            max_batch_delay_ms=0,
            max_queued=1000,
            executor=ThreadPoolExecutor(1),
        )
        batcher.start()
        first = asyncio.ensure_future(batcher.submit(np.full((1, 2), 0.0)))
        await asyncio.sleep(0.05)  # the first batch is now running (blocked on the gate)
        rest = [
            asyncio.ensure_future(batcher.submit(np.full((i, 2), float(i)))) for i in range(1, 6)
        ]
        await asyncio.sleep(0.05)
        gate.set()
        results = await asyncio.gather(first, *rest)
        await batcher.stop()
        assert batcher.stats.requests == 6
        assert batcher.stats.images == 16
        return results

    results = run(scenario)
    assert recorder.sizes == [1, 15]  # the five waiting requests ran as one batch
    for i, result in enumerate(results[1:], start=1):
        np.testing.assert_array_equal(result, np.full((i, 2), 2.0 * i))


def test_batches_never_exceed_max_batch_size_but_a_big_request_runs_alone() -> None:
    gate = threading.Event()
    recorder = Recorder(gate)

    async def scenario() -> None:
        batcher = MicroBatcher(
            recorder,
            max_batch_size=4,
            max_batch_delay_ms=0,
            max_queued=1000,
            executor=ThreadPoolExecutor(1),
        )
        batcher.start()
        blocker = asyncio.ensure_future(batcher.submit(np.zeros((1, 1))))
        await asyncio.sleep(0.05)
        sizes = [3, 3, 9, 1]
        others = [asyncio.ensure_future(batcher.submit(np.zeros((n, 1)))) for n in sizes]
        await asyncio.sleep(0.05)
        gate.set()
        outs = await asyncio.gather(blocker, *others)
        assert [len(o) for o in outs[1:]] == sizes
        await batcher.stop()

    run(scenario)
    assert recorder.sizes == [1, 3, 3, 9, 1]


def test_an_error_reaches_every_caller_of_the_batch() -> None:
    def explode(batch: np.ndarray) -> np.ndarray:
        raise RuntimeError(f"boom on {len(batch)}")

    async def scenario() -> list[BaseException | np.ndarray]:
        batcher = MicroBatcher(explode, max_batch_size=8, max_batch_delay_ms=0, max_queued=100)
        batcher.start()
        results = await asyncio.gather(
            *(batcher.submit(np.zeros((1, 1))) for _ in range(3)), return_exceptions=True
        )
        await batcher.stop()
        return results

    results = run(scenario)
    assert all(isinstance(r, RuntimeError) for r in results)
    assert str(results[0]) == "boom on 3"  # one inline batch of all three, one error for each


def test_a_full_queue_refuses_at_once() -> None:
    async def scenario() -> None:
        batcher = MicroBatcher(Recorder(), max_batch_size=8, max_batch_delay_ms=0, max_queued=5)
        # The worker is not started: nothing drains the queue.
        pending = asyncio.ensure_future(batcher.submit(np.zeros((4, 1))))
        await asyncio.sleep(0)
        with pytest.raises(Overloaded, match=r"queue is full \(4 images waiting, limit 5\)"):
            await batcher.submit(np.zeros((2, 1)))
        assert batcher.queued == 4
        await batcher.stop()
        with pytest.raises(Overloaded, match="shutting down"):
            await pending

    run(scenario)


def test_a_request_past_its_deadline_is_dropped() -> None:
    gate = threading.Event()
    recorder = Recorder(gate)

    async def scenario() -> None:
        batcher = MicroBatcher(
            recorder,
            max_batch_size=8,
            max_batch_delay_ms=0,
            max_queued=100,
            executor=ThreadPoolExecutor(1),
        )
        batcher.start()
        running = asyncio.ensure_future(batcher.submit(np.zeros((1, 1))))
        await asyncio.sleep(0.05)
        with pytest.raises(DeadlineExceeded, match="waited more than 50 ms"):
            await batcher.submit(np.zeros((2, 1)), timeout_s=0.05)
        gate.set()
        await running
        await asyncio.sleep(0.05)
        await batcher.stop()
        assert batcher.queued == 0

    run(scenario)
    assert recorder.sizes == [1]  # the expired request never ran


def test_an_idle_server_does_not_wait_for_the_batch_delay() -> None:
    async def scenario() -> None:
        # A one-minute delay: if a lone request waited for company, this would time out.
        batcher = MicroBatcher(
            Recorder(), max_batch_size=64, max_batch_delay_ms=60_000, max_queued=100
        )
        batcher.start()
        for _ in range(3):
            out = await asyncio.wait_for(batcher.submit(np.ones((1, 1))), timeout=5)
            np.testing.assert_array_equal(out, [[2.0]])
        await batcher.stop()

    run(scenario)


def test_after_a_merged_batch_the_worker_waits_for_the_clients_to_return() -> None:
    """Closed-loop clients: after a batch of 4, the next 4 requests are gathered into one batch."""
    recorder = Recorder()
    stats: list[tuple[int, int, int]] = []

    async def scenario() -> None:
        batcher = MicroBatcher(
            recorder, max_batch_size=64, max_batch_delay_ms=2_000, max_queued=100
        )
        batcher.start()
        await asyncio.gather(*(batcher.submit(np.ones((1, 1))) for _ in range(4)))

        async def client(delay: float) -> np.ndarray:
            await asyncio.sleep(delay)
            return await batcher.submit(np.ones((1, 1)))

        await asyncio.gather(*(client(0.02 * i) for i in range(4)))
        s = batcher.stats
        stats.append((s.batches, s.requests, s.max_batch_images))
        await batcher.stop()

    run(scenario)
    assert recorder.sizes == [4, 4]
    assert stats == [(2, 8, 4)]


def test_a_lone_client_runs_at_once_but_probes_for_company_and_a_busy_batcher_queues() -> None:
    """run_now runs small work in the caller while the batcher is idle and its last batch was
    one request (the worker is not even started here), except every PROBE-th call, which
    answers None so that the caller queues; while the worker holds a batch, nothing runs now."""
    gate = threading.Event()
    recorder = Recorder(gate)

    async def scenario() -> None:
        batcher = MicroBatcher(
            recorder,
            max_batch_size=64,
            max_batch_delay_ms=0,
            max_queued=100,
            executor=ThreadPoolExecutor(1),
            inline_max_items=2,
        )
        gate.set()
        answers = [batcher.run_now(np.ones((2, 1))) for _ in range(PROBE)]
        assert all(a is not None for a in answers[:-1])
        assert answers[-1] is None  # the probe: the caller submits it instead
        np.testing.assert_array_equal(answers[0], np.full((2, 1), 2))
        assert batcher.run_now(np.ones((3, 1))) is None  # over inline_max_items
        assert recorder.sizes == [2] * (PROBE - 1)
        assert batcher.stats.batches == PROBE - 1
        gate.clear()
        batcher.start()
        big = asyncio.ensure_future(batcher.submit(np.ones((3, 1))))
        await asyncio.sleep(0.05)  # the worker holds it, blocked on the gate
        assert batcher.run_now(np.ones((1, 1))) is None  # busy
        small = asyncio.ensure_future(batcher.submit(np.ones((1, 1))))
        await asyncio.sleep(0.05)
        assert not small.done()  # queued behind the running batch
        gate.set()
        await asyncio.gather(big, small)
        await batcher.stop()
        assert recorder.sizes[-2:] == [3, 1]

    run(scenario)


def test_after_a_merged_batch_requests_queue_until_load_falls() -> None:
    """Once a batch merged several requests, run_now declines (others are coming back); a
    batch of one request alone turns inline runs back on."""
    recorder = Recorder()

    async def scenario() -> None:
        batcher = MicroBatcher(
            recorder, max_batch_size=64, max_batch_delay_ms=0, max_queued=100, inline_max_items=8
        )
        batcher.start()
        await asyncio.gather(*(batcher.submit(np.ones((1, 1))) for _ in range(3)))
        assert batcher.run_now(np.ones((1, 1))) is None
        await batcher.submit(np.ones((1, 1)))  # alone: a batch of one
        assert batcher.run_now(np.ones((1, 1))) is not None
        await batcher.stop()

    run(scenario)
    assert recorder.sizes == [3, 1, 1]


def test_batches_run_in_the_loop_let_each_caller_answer_before_the_next_runs() -> None:
    """Without an executor every batch runs on the event loop; between two batches the worker
    yields, so that the first batch's caller answers before the second batch runs (else every
    answer would wait for the whole queue to be run)."""
    events: list[str] = []

    def model(batch: np.ndarray) -> np.ndarray:
        events.append(f"run {int(batch[0, 0])}")
        return batch

    async def caller(batcher: MicroBatcher, index: int) -> None:
        await batcher.submit(np.full((2, 1), float(index)))
        events.append(f"answer {index}")

    async def scenario() -> None:
        batcher = MicroBatcher(model, max_batch_size=2, max_batch_delay_ms=0, max_queued=100)
        batcher.start()
        await asyncio.gather(*(caller(batcher, index) for index in range(3)))
        await batcher.stop()

    run(scenario)
    assert events == ["run 0", "answer 0", "run 1", "answer 1", "run 2", "answer 2"]

"""Which offset a partition may commit when records finish out of order.

Records of one partition are processed concurrently, so record 7 may finish before
record 5. The committed offset must never pass a record whose outcome is not recorded:
it is the lowest offset still in flight, or one past the highest finished when none is.
"""

from __future__ import annotations

import heapq


class PartitionOffsets:
    def __init__(self) -> None:
        self._in_flight: set[int] = set()
        self._heap: list[int] = []
        self._highest_done = -1
        self._stored = -1

    def started(self, offset: int) -> None:
        if self._stored < 0:  # the group's position when we got the partition
            self._stored = offset
        self._in_flight.add(offset)
        heapq.heappush(self._heap, offset)

    def finished(self, offset: int) -> int | None:
        """Mark `offset` done; the new offset to store (next to read), or None if unchanged."""
        self._in_flight.discard(offset)
        self._highest_done = max(self._highest_done, offset)
        while self._heap and self._heap[0] not in self._in_flight:
            heapq.heappop(self._heap)
        commit = self._heap[0] if self._heap else self._highest_done + 1
        if commit > self._stored:
            self._stored = commit
            return commit
        return None

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

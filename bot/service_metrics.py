"""What the sticker service counts: queue waits, service times, batch sizes, failures; as `/stats` data
and as Prometheus text."""

from __future__ import annotations

import statistics
from collections import Counter, deque
from dataclasses import dataclass, field

WINDOW = 1000  # recent requests the percentiles are computed over


def percentile(values: deque[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


@dataclass
class ServiceMetrics:
    waits: deque[float] = field(default_factory=lambda: deque(maxlen=WINDOW))  # s queued before running
    services: deque[float] = field(default_factory=lambda: deque(maxlen=WINDOW))  # s from request to result
    batch_times: deque[float] = field(default_factory=lambda: deque(maxlen=50))  # s per engine run
    batch_sizes: Counter[int] = field(default_factory=Counter)
    completed: int = 0
    failures: int = 0
    refused: int = 0
    cancelled: int = 0
    expired: int = 0
    coalesced: int = 0
    splits: int = 0
    restarts: int = 0

    def record_batch(self, size: int, seconds: float) -> None:
        self.batch_sizes[size] += 1
        self.batch_times.append(seconds)

    def batch_seconds(self) -> float:
        """Recent seconds per engine run (3 s before any has run: a warm offline /sticker)."""
        return statistics.median(self.batch_times) if self.batch_times else 3.0

    def snapshot(self, queue_length: int) -> dict[str, object]:
        """The numbers `/stats` shows."""
        return {
            "queue_length": queue_length,
            "wait_p50_s": percentile(self.waits, 0.5),
            "wait_p95_s": percentile(self.waits, 0.95),
            "service_p50_s": percentile(self.services, 0.5),
            "service_p95_s": percentile(self.services, 0.95),
            "batch_sizes": dict(sorted(self.batch_sizes.items())),
            "completed": self.completed,
            "failures": self.failures,
            "refused": self.refused,
            "cancelled": self.cancelled,
            "expired": self.expired,
            "coalesced": self.coalesced,
            "batch_splits": self.splits,
            "worker_restarts": self.restarts,
        }

    def prometheus(self, queue_length: int) -> str:
        """The Prometheus text exposition format (version 0.0.4)."""
        lines = [
            "# TYPE pmg_queue_length gauge",
            f"pmg_queue_length {queue_length}",
        ]
        for name, values in (("wait", self.waits), ("service", self.services)):
            lines.append(f"# TYPE pmg_{name}_seconds summary")
            for share in (0.5, 0.95):
                value = percentile(values, share)
                if value is not None:
                    lines.append(f'pmg_{name}_seconds{{quantile="{share}"}} {value:.6f}')
            lines.append(f"pmg_{name}_seconds_count {len(values)}")
        lines.append("# TYPE pmg_batch_size_total counter")
        lines += [
            f'pmg_batch_size_total{{size="{size}"}} {count}'
            for size, count in sorted(self.batch_sizes.items())
        ]
        for name in (
            "completed",
            "failures",
            "refused",
            "cancelled",
            "expired",
            "coalesced",
            "splits",
            "restarts",
        ):
            lines += [
                f"# TYPE pmg_requests_{name}_total counter",
                f"pmg_requests_{name}_total {getattr(self, name)}",
            ]
        return "\n".join(lines) + "\n"

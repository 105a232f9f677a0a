"""Work bigger than one machine on Ray: distributed encoding, and shard actors for search.

Install with ``pip install 'densekit[ray]'``; nothing else in densekit needs Ray.
"""

from densekit.distributed.cluster import connected
from densekit.distributed.encoding import WorkerPlan, plan_workers, ray_encoding

__all__ = ["WorkerPlan", "connected", "plan_workers", "ray_encoding"]

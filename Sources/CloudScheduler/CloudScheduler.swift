// CloudScheduler: Nova's FilterScheduler, pure: filters and weighers over host snapshots.

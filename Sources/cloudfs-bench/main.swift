print("cloudfs-bench")

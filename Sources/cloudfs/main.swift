print("cloudfs")

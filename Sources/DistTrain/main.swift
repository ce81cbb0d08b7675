print("disttrain")

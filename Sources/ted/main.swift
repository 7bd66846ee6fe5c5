print("ted")

def process_list(data):
    return [x * 2 for x in data if x > 0]


def calculate_stats(numbers):
    return {"sum": sum(numbers), "avg": sum(numbers) / len(numbers), "count": len(numbers)}


print("Data processing utilities loaded")

"""The Generation flow's domain logic: messages, prompt enhancement, cost
reservation, submission, polling policy, status checks and storing the clip."""

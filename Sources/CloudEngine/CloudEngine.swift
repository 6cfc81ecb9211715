// CloudEngine: Nova's conductor + compute manager: validates API calls, runs the task queue.

// CloudFS: the tree: path -> node, attribute files, ctl parsing, waits, the events file.

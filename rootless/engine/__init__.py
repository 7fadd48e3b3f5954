"""Engine operations: what the CLI verbs and the Python API call.

Each composes the lower layers (image store, registry client, runtime) into one
user-level operation: pull an image, run a container from it, and so on.
"""

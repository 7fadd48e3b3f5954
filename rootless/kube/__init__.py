"""Kubernetes YAML out of containers and into containers.

- :mod:`source` reads multi-document YAML, keeping the file and line of every key;
- :mod:`generate` turns container facts into Pod, Deployment and Service objects (pure);
- :mod:`collect` gathers those facts from the container store (I/O);
- :mod:`plan` turns Pod and Deployment objects into the engine's ``RunOptions`` (pure);
- :mod:`play` creates, starts and removes the pods' containers (I/O).
"""

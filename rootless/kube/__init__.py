"""Kubernetes YAML out of containers and into containers.

- :mod:`source` reads multi-document YAML, keeping the file and line of every key;
- :mod:`reader` reads one document's values, with errors and warnings at their line;
- :mod:`generate` turns container facts into Pod, Deployment and Service objects (pure);
- :mod:`collect` gathers those facts from the container store (I/O);
- :mod:`plan` turns Pods, Deployments and ReplicaSets into the engine's ``RunOptions`` (pure),
  with :mod:`objects` (ConfigMaps and Secrets) and :mod:`probes` (probes <-> healthchecks);
- :mod:`play` creates, starts and removes the pods' containers (I/O).
"""

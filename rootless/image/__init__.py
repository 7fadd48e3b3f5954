"""Image model and store: references, manifests, blobs, layers and root filesystems."""

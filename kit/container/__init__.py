"""The kit's images and containers: build them, run ``evaluate`` in them, choose one to re-run.

``engine`` (Docker behind two small interfaces, ``ImageStore`` and ``ContainerRunner``; the
docker SDK is imported only there), ``fake`` (an in-memory engine), ``image`` (build an
image from a checkout; its labels; what a run records of it), ``launch`` (run ``evaluate``
in an image: mounts, agent forwarding, the bundle brought out), ``choice`` (the bundle's
image, an equivalent one, or a rebuild). Layer 2: may import ``kit.machine`` and layer 0;
never ``kit.evaluate`` or ``kit.verify`` (its siblings), nor anything above.
"""

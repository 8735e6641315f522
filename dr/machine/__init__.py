"""The host machine itself: its configuration file, its role, preflight, packages and dockerd, the base image,
the Go builds and the component images. Imports only dr/engine/."""

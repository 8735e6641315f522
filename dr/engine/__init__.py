"""The Docker Engine: the SDK's helpers, and one of our tools run in its image. The bottom room of dr/."""

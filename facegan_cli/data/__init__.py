"""Run-time data: the prepared-dataset format, the image-source hierarchy, and the one decode-and-reject
path (prepare-time jobs live in `facegan_cli.prepare`)."""

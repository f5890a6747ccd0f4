"""Side-by-side benchmarks of the thumbnail job: Pillow, libvips, sharp and the floor; memory ceilings; Lambda cost."""

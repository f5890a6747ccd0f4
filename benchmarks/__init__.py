"""Side-by-side benchmarks of the thumbnail job: Pillow vs libvips vs sharp vs the floor, memory ceilings, Lambda cost."""

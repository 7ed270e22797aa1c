"""`make bench`: load speed and memory of the project's paths against their ceilings."""

"""Scripts behind ``make bench``: each ``bench_*.py`` module has ``main(quick: bool)`` printing tables."""

"""Course files here run on variants from examples/variants, which the default registry does not
search: tests/test_variants.py replays them with ``--protocols-dir examples/variants``, so the
course-file collector (iptflow.testing, default registry) leaves them alone."""

collect_ignore_glob = ["*.course.jsonl"]

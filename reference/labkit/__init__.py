"""The lab kit: what every notebook in labs/ shares.

::

    from reference.labkit import start
    lab = start("05")          # a fresh workspace/lab05 with the state lab 05 starts from

- ``meta``: each lab's card (goal, days, minutes, modules), read from the lab's first cell: the
  one source of labs/README.md's map, README.md's 90-day table and the site's learning path.
- ``checkpoint``: start any lab from scratch by running the real pipeline in its own workspace.
- ``selfcheck``: checks that say in words what is wrong and what to try; exercises with solutions.
- ``assess``: the Level 0/1/2 self-assessment of a team (`mlops-lab assess`).

Nothing here runs on import; ``start`` is imported lazily so `import reference.labkit` stays cheap.
"""

from __future__ import annotations


def start(lab_id: str, **kwargs):
    """See :func:`reference.labkit.checkpoint.start`."""
    from reference.labkit.checkpoint import start as _start

    return _start(lab_id, **kwargs)

"""Run the authors' released EGS policy on a folder of task files, inside *their* Python.

This file runs under the interpreter of a checkout of github.com/binqi-sun/egs (its pinned
TensorFlow), never under sysgym's: it imports nothing of sysgym. :mod:`benchmarks.egs_released`
starts it as a subprocess::

    <egs python> benchmarks/egs_released_runner.py EGS_DIR MODEL TASK_DIR OUT_DIR

It imports the tool's own ``egs.py`` from EGS_DIR and does what that script's ``main`` does for one
``--in_dot``/``--out_dot`` pair (load the SavedModel, build ``EGSEnv`` on the file, call its
``egs(agent, env)``: argmax over the masked policy until the episode ends, then ``save_dot``),
but loads the model once for every ``*.dot`` in TASK_DIR (sorted by name) instead of once per
file. Per task it writes the tool's output ``.dot`` (the scheduled graph, ``Worker=`` in each
label) to OUT_DIR under the input's name, and one line ``<name> <workers>`` to
``OUT_DIR/workers.txt`` with the worker count the tool printed (``-1`` if it printed none).
"""

import contextlib
import io
import os
import re
import sys

_PRINTED = re.compile(r"scheduled with (\d+) workers")


def main(argv):
    if len(argv) != 4:
        sys.exit("usage: egs_released_runner.py EGS_DIR MODEL TASK_DIR OUT_DIR")
    egs_dir, model, task_dir, out_dir = (os.path.abspath(a) for a in argv)
    sys.path.insert(0, egs_dir)
    os.chdir(egs_dir)                      # the tool's modules expect to run from its folder
    import egs as tool  # the tool's egs.py (it imports tensorflow)

    agent = tool.PpoAgent(tool.tf.saved_model.load(model))
    names = sorted(f for f in os.listdir(task_dir) if f.endswith(".dot") and not f.startswith("."))
    with open(os.path.join(out_dir, "workers.txt"), "w") as summary:
        for name in names:
            env = tool.EGSEnv(os.path.join(task_dir, name), out_path=os.path.join(out_dir, name))
            printed = io.StringIO()
            with contextlib.redirect_stdout(printed):
                tool.egs(agent, env)
            found = _PRINTED.search(printed.getvalue())
            summary.write(f"{name} {found.group(1) if found else -1}\n")
            summary.flush()


if __name__ == "__main__":
    main(sys.argv[1:])

"""Executes one notebook top to bottom with nbclient (what `jupyter nbconvert --execute` uses),
writes the executed copy even when a cell fails, and on failure prints that cell with its
stderr: tslab reports TypeScript errors on stderr, which nbconvert's own message leaves out.
Any stderr output fails the run, also from a cell that raised no error.

Usage: python3 scripts/run-notebooks.py NOTEBOOK OUTPUT KERNEL TIMEOUT_SECONDS
Called by scripts/run-notebooks.ts (npm start); exit status 1 when a cell failed.
"""
import os
import sys

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError


def stderr_text(cell):
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream" and o.get("name") == "stderr")


def main(src, out, kernel, timeout):
    nb = nbformat.read(src, as_version=4)
    client = NotebookClient(
        nb,
        timeout=int(timeout),
        kernel_name=kernel,
        # The kernel runs in the notebook's folder, as when Jupyter opens it there: the caller
        # writes the copy with its relative imports moved to that folder.
        resources={"metadata": {"path": os.path.dirname(os.path.abspath(src))}},
    )
    failed = None
    try:
        client.execute()
    except CellExecutionError as e:
        failed = e
    nbformat.write(nb, out)
    if failed is None:
        # A cell that wrote to stderr failed too: tslab reports a TypeScript or import error
        # there, and some paths of it end the cell without an error output.
        noisy = [c for c in nb.cells if c.cell_type == "code" and stderr_text(c)]
        if not noisy:
            return 0
        for cell in noisy:
            sys.stderr.write("\n--- cell that wrote to stderr ---\n%s\n--- its stderr ---\n%s\n" % (cell.source, stderr_text(cell)))
        return 1
    last = nb.cells[0]
    for cell in nb.cells:
        if cell.cell_type != "code" or cell.get("execution_count") is None:
            continue
        last = cell
    sys.stderr.write("\n--- cell that failed ---\n%s\n" % last.source)
    for o in last.get("outputs", []):
        if o.get("output_type") == "stream" and o.get("name") == "stderr":
            sys.stderr.write("--- its stderr ---\n%s\n" % o.get("text", ""))
        if o.get("output_type") == "error":
            sys.stderr.write("--- error ---\n%s: %s\n" % (o.get("ename"), o.get("evalue")))
    sys.stderr.write("--- %s ---\n" % str(failed).strip().splitlines()[-1])
    return 1


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.stderr.write(__doc__)
        sys.exit(2)
    sys.exit(main(*sys.argv[1:]))

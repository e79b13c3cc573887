"""A process that draws some courses' figures for the report.

Run as ``python -m carscore.htmlreport.worker JOB RESULT ID,ID,...``: JOB is
a pickle of what the figures read of an assessment (its days, summaries,
intake and rule sets; the compiled engine stays with the parent), the ids are
the courses to draw, and RESULT receives a pickle of drawings.draw_courses'
answer. The worker is
a fresh interpreter rather than a multiprocessing child, so that it never
runs the caller's own main script again, and a process forked from one that
has used polars' thread pool (which can hang) is never made.
"""

from __future__ import annotations

import gc
import os
import pickle
import signal
import sys
import threading
import time
from types import SimpleNamespace

GC_FIRST_GENERATION = 50_000


def main(job_path: str, result_path: str, courses: str) -> int:
    # Ctrl-C is the parent's to answer: it stops the workers itself
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_end_with_parent, args=(os.getppid(), os.path.dirname(job_path)), daemon=True).start()
    from carscore.assess import Assessment
    from carscore.htmlreport.drawings import draw_courses

    with open(job_path, "rb") as fh:
        job = pickle.load(fh)
    engine = SimpleNamespace(rulesets=job["rulesets"])
    a = Assessment(engine, job["intake"], job["days"], job["summaries"])  # type: ignore[arg-type]
    # matplotlib makes and drops hundreds of thousands of objects per figure; the
    # collector's default pace costs a tenth of the drawing time. What is loaded
    # stays (frozen), and the figures' cycles are still collected, less often.
    gc.freeze()
    gc.set_threshold(GC_FIRST_GENERATION, 20, 100)
    drawn = draw_courses([int(c) for c in courses.split(",") if c], a)
    with open(result_path, "wb") as fh:
        pickle.dump(drawn, fh, protocol=pickle.HIGHEST_PROTOCOL)
    return 0


def _end_with_parent(parent: int, folder: str) -> None:
    """A report whose process was ended (killed, not interrupted) wants no more
    figures, and its files (the job, the results) are removed in its place."""
    import shutil

    while os.getppid() == parent:
        time.sleep(0.5)
    shutil.rmtree(folder, ignore_errors=True)
    os._exit(1)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], sys.argv[3]))

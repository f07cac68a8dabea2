"""Guardians: processes that see a call through when gocall cannot (issue 18).

* :mod:`.handover`: a callee that does not return is left to a guardian, which holds its
  thread until it does, finishes the protocol, restores the thread and detaches
  (second Ctrl-C, ``--timeout`` with ``--abandon``, ``gocall.attach(..., abandon=True)``);
* :mod:`.pending`: the calls guardians hold, so that a later gocall leaves their threads alone;
* :mod:`.alone`: what every guardian does first (lives on alone, whatever gocall does);
* :mod:`.watch`: gocall killed outright (SIGKILL, OOM): a guardian started with the session's
  first call sees the run in flight through (and what it cannot cover);
* :mod:`.net`: the trap net, which holds a thread that reaches debugCallV2's INT3 untraced
  until that guardian takes it back.
"""

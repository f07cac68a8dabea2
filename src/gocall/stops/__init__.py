"""The parts of :mod:`gocall.stop`, one idea each.

* :mod:`.breakpoint`: what a breakpoint is and where a location's code is;
* :mod:`.frame`: a stop, its frames and their variables (evaluating at a stop);
* :mod:`.hits`: what a thread on one of our INT3s becomes (a stop, or a run past it);
* :mod:`.stepping`: stepping a thread over a breakpoint, displaced or in place;
* :mod:`.calls`: the stopped thread lent to the call engine, our breakpoints kept in.

:class:`gocall.stop.Debugger` ties them together; import from there.
"""

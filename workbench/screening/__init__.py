"""Automatic speech/image screening and triage advice (issue 11): pure modules, no console integration yet.

- :mod:`workbench.screening.transcript`: facts from the caller's words (Dutch and English), with evidence.
- :mod:`workbench.screening.image`: facts from frames and clips with OpenCV 4.x (fire, smoke, people, darkness, blur).
- :mod:`workbench.screening.disagreement`: possible speech/image disagreement per aspect (never ground truth).
- :mod:`workbench.screening.advice`: an urgency suggestion with its reasons (documented rule table).

See ``docs/screening.md`` for the scores, the thresholds and their sources, and the results on the real clips.
"""

"""What leaves the kernel, and how it is kept harmless.

``markdown`` makes model and tool text inert (no raw HTML, no live script links) and
``redaction`` takes out every credential Pi could use; the cell, the transcript, the
cassette and the exports all pass through them.  ``export`` writes documents for people and
holds the rule for every file written for the user; ``cassette`` records and replays turns.
"""

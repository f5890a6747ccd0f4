"""Two load reports side by side (`harness compare A B`): the figures that matter, their differences, Markdown + PNG."""

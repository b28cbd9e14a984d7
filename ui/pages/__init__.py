"""One module per page of the main window; `PAGES` lists them in rail order."""

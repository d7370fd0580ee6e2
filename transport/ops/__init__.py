"""The ops page (GET /ops): the state of the event at a glance, for the organiser and whoever runs
the server. board.py builds the summary the page's socket receives, history.py keeps the charts'
last 15 minutes, routes.py serves the page's files from static/."""

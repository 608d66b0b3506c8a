"""The web app for factories, SMEs and admins: server-rendered Jinja2 pages with HTMX, in zh-CN and en.
Pages call the same services as the API and never duplicate their rules."""

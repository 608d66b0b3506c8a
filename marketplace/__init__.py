"""The app shell of the shared-manufacturing capacity marketplace: settings, database, auth,
organisations, API wiring, CLI and the Celery app. Domain packages never import it."""

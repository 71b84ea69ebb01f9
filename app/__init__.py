"""The clogs Faust application package: ``faust -A app worker`` finds ``app.app`` here.

The Faust app is created on first access (PEP 562), so that ``app.settings`` and the
command line can be imported without importing Faust, torch or the model.
"""


def __getattr__(name):
    if name == "app":
        from app.faust_app import app

        return app
    raise AttributeError(name)

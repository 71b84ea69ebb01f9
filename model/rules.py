"""Reading a rules file: the JSON file of extra rules that the normaliser (model/normalise.py) and
the redaction (app/outputs/redaction.py) each take, with a message naming the file when it is
missing or not JSON."""
import json
from pathlib import Path


def load_rules_file(path, what):
    """The JSON value of the rules file ``path``; ``what`` names it in errors ("normaliser rules")."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} file not found: {path}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{what} file {path} is not valid JSON: {exc}") from None

"""100HP's settings and their production rules (the operations guide's settings table describes
each). Registered with the provider (wallet/hp100/__init__.py `register`): a wallet without 100HP
asks for none of them."""
from ..settings import Settings, allow_list_problems, guessable, https_problems, networks, secret, url


def production_problems(config) -> list:
    problems = []
    if len(config["HP_SECRET"]) < 16:  # a short secret can be guessed, and it moves money
        problems.append(f"HP_SECRET is {len(config['HP_SECRET'])} characters long: production needs at least 16")
    elif why := guessable(config["HP_SECRET"]):
        problems.append(f"HP_SECRET {why}: a placeholder, not the secret 100HP gave you")
    problems += allow_list_problems("HP_ALLOWED_IPS", config["HP_ALLOWED_IPS"], "100HP calls from")
    return problems + https_problems(config, ["HP_API_URL"])


SETTINGS = Settings({
    "HP_SECRET": ("hp-sandbox-secret", secret),
    "HP_ALLOWED_IPS": ("", networks),
    "HP_API_URL": ("", url),
}, production_problems, secrets=("HP_SECRET",))

from shared.cli.main import app

app()

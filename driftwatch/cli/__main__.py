from driftwatch.cli.main import app

app()

from openrft.cli import app

app()

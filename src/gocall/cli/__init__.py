"""gocall's command-line front end: everything printed goes through console.Console."""

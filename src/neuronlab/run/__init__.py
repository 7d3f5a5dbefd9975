"""What a run needs around the model: building parts, callbacks, loggers, figures, folders, resume,
reports."""

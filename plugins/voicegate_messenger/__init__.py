"""Facebook Messenger channel: a Facebook Page's webhook in, the Send API out (quick replies for choices)."""

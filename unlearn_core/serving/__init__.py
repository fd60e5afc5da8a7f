"""What the app and the Hub build on, without Gradio: a visitor's run from the page's fields to
what the page shows (`runs`), sessions and temporary folders (`session`), choices, defaults and
previews (`studio`), the HTML report (`report`), Hub upload (`hub`), ZeroGPU (`zerogpu`) and model
access (`access`)."""

// Building the page from data with DOM calls only: text is always text (no
// innerHTML: reasons and names come from the server), and no inline style
// attribute (the Content-Security-Policy forbids them; CSSOM is used instead).

/** `<tag attrs>children</tag>`; attrs: class, dataset, title, on<event>, others as attributes. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "dataset") Object.assign(node.dataset, value);
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
}

export const $ = (id) => document.getElementById(id);

export function show(node, visible = true) {
  node.hidden = !visible;
}

/** Replace a <select>'s options: [{value, label}], keeping the current choice when it is offered. */
export function setOptions(select, options) {
  const previous = select.value;
  select.replaceChildren(...options.map((o) => el("option", { value: o.value }, o.label)));
  if (options.some((o) => o.value === previous)) select.value = previous;
}

(function () {
  'use strict';
  // The practice log: only on a page served with --allow-writes, to the key's holder.
  if (!/^https?:$/.test(location.protocol) || !window.fetch) return;
  var page = window.audioguidePage;
  var token = null;

  var el = window.audioguidePage.el;
  function describe(entry) {
    var parts = [entry.done ? 'Done' : 'Not done'];
    if (entry.rating !== null) parts.push('feeling ' + entry.rating + '/10');
    if (entry.feeling) parts.push(entry.feeling);
    if (entry.too_much) parts.push('too much');
    var when = new Date(entry.created);
    var text = when.toLocaleDateString(undefined, {weekday: 'short', day: 'numeric', month: 'short'}) +
      ' · ' + parts.join(' · ');
    return entry.note ? text + '\n' + entry.note : text;
  }
  function show(article, entry) {
    var list = article.querySelector('ul.logged');
    list.appendChild(el('li', {text: describe(entry)}));  // text, never markup
  }

  var count = 0;
  function form(article) {
    var n = ++count;
    function id(name) { return 'log' + n + '-' + name; }
    var rating = el('input', {type: 'range', min: '0', max: '10', step: '1', value: '5',
                              id: id('rating'), name: 'rating'});
    var ratingShown = el('output', {'for': id('rating'), text: '5'});
    rating.addEventListener('input', function () { ratingShown.textContent = rating.value; });
    var status = el('p', {role: 'status', 'class': 'muted'});
    var fields = el('form', {'class': 'log'}, [
      el('fieldset', {}, [
        el('legend', {text: 'Did you practise it?'}),
        el('label', {}, [el('input', {type: 'radio', name: 'done', value: 'yes', checked: ''}),
                         document.createTextNode(' Done')]),
        el('label', {}, [el('input', {type: 'radio', name: 'done', value: 'no'}),
                         document.createTextNode(' Not today')])]),
      el('label', {'for': id('rating')}, [document.createTextNode('How do you feel now, 0 (very low) to 10 (very good)? '), ratingShown]),
      rating,
      el('label', {}, [el('input', {type: 'checkbox', name: 'too_much'}),
                       document.createTextNode(' It was too much (next week goes gentler)')]),
      el('label', {'for': id('feeling'), text: 'A word for the feeling (optional)'}),
      el('input', {type: 'text', id: id('feeling'), name: 'feeling', list: 'feelings',
                   maxlength: '24', autocomplete: 'off'}),
      el('label', {'for': id('note'), text: 'A short note (optional, kept on your computer)'}),
      el('textarea', {id: id('note'), name: 'note', rows: '2', maxlength: '500'}),
      el('label', {}, [el('input', {type: 'checkbox', name: 'speak_note'}),
                       document.createTextNode(' The weekly review may read this note aloud')]),
      el('button', {type: 'submit', text: 'Save'}),
      status]);
    fields.addEventListener('submit', function (event) {
      event.preventDefault();
      var data = {
        session: article.dataset.session,
        done: fields.elements.done.value === 'yes',
        rating: parseInt(rating.value, 10),
        too_much: fields.elements.too_much.checked,
        feeling: fields.elements.feeling.value.trim() || null,
        note: fields.elements.note.value.trim() || null,
        speak_note: fields.elements.speak_note.checked
      };
      status.className = 'muted';
      status.textContent = 'Saving…';
      fetch('api/log', {method: 'POST', credentials: 'same-origin',
                        headers: {'Content-Type': 'application/json', 'X-Audioguide-Token': token},
                        body: JSON.stringify(data)})
        .then(function (response) {
          return response.json().then(function (body) { return {ok: response.ok, body: body}; });
        })
        .then(function (answer) {
          if (!answer.ok) throw new Error(answer.body.error || 'the entry was not saved');
          show(article, answer.body);
          fields.elements.note.value = '';
          status.textContent = 'Saved.';
        })
        .catch(function (error) {
          status.className = 'error';
          status.textContent = 'Not saved: ' + error.message;
        });
    });
    return fields;
  }

  fetch('api/state', {credentials: 'same-origin'})
    .then(function (response) { return response.ok ? response.json() : null; })
    .then(function (state) {
      if (!state || state.log === 'off') return;
      if (state.log !== 'open') {
        var hint = el('p', {'class': 'muted', text: 'To keep a practice log on this phone, ' +
          'open the address with the key that “audioguide serve --allow-writes” printed.'});
        document.querySelector('main').appendChild(hint);
        return;
      }
      token = state.token;
      window.audioguideToken = token;
      page.articles.forEach(function (article) {
        var log = el('details', {'class': 'log'}, [el('summary', {text: 'Log this session'}),
                                                  form(article)]);
        article.appendChild(log);
        article.appendChild(el('ul', {'class': 'logged'}));
      });
      state.entries.forEach(function (entry) {
        var article = page.articles.filter(function (a) { return a.dataset.session === entry.session; })[0];
        if (article) show(article, entry);
      });
      document.body.classList.add('logging');
      document.dispatchEvent(new CustomEvent('audioguide:log-open'));
    })
    .catch(function () { /* no log here: the page stays a player */ });
})();

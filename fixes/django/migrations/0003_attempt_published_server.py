from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('fixes', '0002_attempts_and_handouts'),
    ]

    operations = [
        migrations.AddField(
            model_name='attemptrecord',
            name='published_server',
            field=models.CharField(max_length=64, null=True),
        ),
    ]
